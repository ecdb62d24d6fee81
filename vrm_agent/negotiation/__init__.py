"""The negotiation protocol and the person's terms, as pure functions over plain data.

``odrl`` models policies; ``decide`` answers a request from the person's terms with a trace;
``protocol`` is the state machine both sides share; ``wire`` reads and writes the JSON-LD
messages; ``terms`` holds the starter roster. Network and pod I/O live in the daemon and the
vendor side.
"""
