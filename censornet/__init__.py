"""The mock censor network: namespaces, netfilter rules and real servers, with a scenario
catalogue, the end-to-end demo and the lab check that scores a probe against it.
"""
