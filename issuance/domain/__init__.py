"""Domain rules as pure functions: no Beam, Kafka or psycopg imports below this package."""
