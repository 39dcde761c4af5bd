"""Outgoing mail: providers (Resend, SendGrid, SMTP), messages from templates, and the outbox that sends them."""
