"""AI providers per organization and the OpenAI-compatible API over them (`/api/{org_slug}/v1`)."""
