"""The RabbitMQ command-line client."""
