"""The REST server: FastAPI on uvicorn."""
