"""Wire models: the JSON shapes on the HTTP boundary, importing only pydantic."""
