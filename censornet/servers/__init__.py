"""The lab's real servers: sites, blockpage, MITM, DNS, and each ISP's censoring middleboxes.

Run one namespace's set with ``python -m censornet.servers ROLE --state STATE_DIR``.
"""
