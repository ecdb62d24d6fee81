"""A conformance kit for the negotiation protocol (docs/protocol.md §15): its checks against
another agent implementation, the kit acting as a vendor (:mod:`.agent`), and against a vendor's
callback inbox, the kit acting as an agent (:mod:`.vendor`). Checks are plain data
(:class:`~vrm_agent.conformance.results.Check`); results become a table or JUnit XML."""
