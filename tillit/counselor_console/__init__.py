"""The counselor console: login, accounts, the console page and its routes."""
