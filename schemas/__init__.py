"""The contract between components: Avro schemas, typed records, topic names and the codec."""
