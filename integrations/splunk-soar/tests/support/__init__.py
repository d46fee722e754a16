"""Test harness pieces: a private Dovecot (`dovecot.Dovecot`) and an OAuth 2.0 stub
provider (`oauth_stub.OAuthStub`) that the end-to-end tests start and stop themselves."""
