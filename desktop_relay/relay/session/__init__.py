"""One browser's session: validated start, the ordered queue of chunks, limits, resume,
state machine, the encoder pipeline, and the small link back to its client. Knows no
sockets: the transport reaches it through `ClientLink`."""
