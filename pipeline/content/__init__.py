"""Article files -> Article records, series navigation and the send queue."""
