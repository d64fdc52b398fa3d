"""Request and response bodies of the API (pydantic), one module per area."""
