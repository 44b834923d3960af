"""Privacy: the customer's personal data, consent per purpose, and how both are kept.

Personal data (name, resident ID number, phone) lives only here, encrypted at rest and
keyed by an opaque customer id that every other capability uses instead.
"""
