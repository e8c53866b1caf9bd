"""What the steps stand on but is no step: the clock, the one exception-to-failure
table, pinned connections, packet capture, header decoding and trigger payloads.
"""
