"""Values that reach the binary as given, for it to check.

The binary checks every configuration value and parameter and says what is wrong,
naming the key and what it expects, never a secret. Pydantic would refuse a bad value
first: for the asset with a message that quotes the whole input (the decrypted password
included), for parameters with no action result at all. So the SDK models of this app
let any value through as given, and a missing required asset key arrives as None.
"""

from typing import Any

from pydantic import BaseModel, ValidationError, ValidatorFunctionWrapHandler, field_validator


class AsGiven(BaseModel):
    """A model whose fields keep what they were given when it does not fit their type."""

    @field_validator("*", mode="wrap")
    @classmethod
    def _as_given(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:  # noqa: ANN401
        try:
            return handler(value)
        except ValidationError:
            return value
