"""The API's documents (OpenAPI, AsyncAPI, the reference page), built from each route's one
declaration (`chalicelib.routing`) and the models it names."""
