"""Runs the SDK's `soarapps package build` with downloads that succeed on slow links.

The SDK (7.0.3) fetches every wheel of uv.lock at once, each with a 10 s timeout: on a
slow or rate-limited link most of them time out and the build fails. Here each download
takes one of a few slots, may take minutes, and is retried; everything else is the SDK's
own build (manifest, wheels, src/, templates/).

Usage: python package.py APP_DIR OUTPUT.tgz
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
from soar_sdk.cli.package.cli import build
from soar_sdk.meta.dependencies.sources import UvSourceDistribution, UvWheel

SLOTS = 4
TIMEOUT_SECS = 180
ATTEMPTS = 4

_slots: asyncio.Semaphore | None = None


async def _download(url: str) -> bytes:
    global _slots  # noqa: PLW0603 (one semaphore for the build's event loop)
    if _slots is None:
        _slots = asyncio.Semaphore(SLOTS)
    async with _slots:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with httpx.AsyncClient(timeout=TIMEOUT_SECS) as client:
                    response = await client.get(url)
                    response.raise_for_status()
                    return response.content
            except (httpx.TransportError, httpx.HTTPStatusError) as error:
                if attempt == ATTEMPTS:
                    raise RuntimeError(f"cannot download {url}: {error}") from error
                await asyncio.sleep(2 * attempt)
    raise AssertionError("unreachable")


async def _fetch_wheel(self: UvWheel) -> bytes:
    if self.url is None:
        raise ValueError(f"Cannot fetch wheel {self.filename or 'unknown'}: no URL provided")
    data = await _download(self.url)
    self.validate_hash(data)
    return data


async def _fetch_and_build(self: UvSourceDistribution) -> tuple[str, bytes]:
    data = await _download(self.url)
    self.validate_hash(data)
    return self._build_wheel(data)


def main() -> None:
    """Build the package of the app in argv[1] into argv[2]."""
    if len(sys.argv) != 3:
        sys.exit("usage: python package.py APP_DIR OUTPUT.tgz")
    UvWheel.fetch = _fetch_wheel  # type: ignore[method-assign]
    UvSourceDistribution.fetch_and_build = _fetch_and_build  # type: ignore[method-assign]
    build(project_context=Path(sys.argv[1]), output_file=Path(sys.argv[2]))


if __name__ == "__main__":
    main()
