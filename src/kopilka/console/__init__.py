"""The console's sign-in: sessions in the database, CSRF tokens, TOTP and lockout."""
