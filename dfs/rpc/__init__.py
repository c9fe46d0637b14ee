"""Wire glue: generated code (v1/), channel and server factories, status and model conversion."""
