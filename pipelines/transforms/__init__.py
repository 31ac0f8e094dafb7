"""The nightly stages as composite PTransforms over batches (one chunk of records per element)."""
