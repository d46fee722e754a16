//! OAuth 2.0 for XOAUTH2 logins: token grants, sealed token storage, interactive login.
