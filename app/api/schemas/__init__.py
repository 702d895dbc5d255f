"""The HTTP API's wire format, one module per domain. Every field carries a description
for the OpenAPI docs."""
