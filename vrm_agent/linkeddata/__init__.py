"""Linked data from strangers, contained: bounded JSON and a JSON-LD document loader that serves
only the contexts the package ships.

Every room that reads JSON-LD (pod documents, WebID profiles, negotiation messages, signed
agreements) goes through here, so one place decides what may be loaded and how much work one
document may cost. The modules import nothing heavier than pyld.
"""
