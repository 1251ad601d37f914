"""The HTTP layer: one module per resource; handlers parse, authorise and call one service."""
