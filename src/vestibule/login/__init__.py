"""Browser sign-in: email-first routing, password, TOTP, reset, recovery, sessions."""
