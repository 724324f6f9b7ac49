"""Sans-I/O codecs: RESP for clients, versioned msgpack for peers."""
