"""The Avro contracts (.avsc), every version kept; loaded by issuance.codec."""
