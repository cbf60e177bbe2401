"""The RabbitMQ consumer: reads the queue, stores, acknowledges after commit."""
