"""Reading OONI Web Connectivity measurements and judging them with our classifier.

``reader`` loads files (JSON, JSONL, JSONC), ``mapping`` turns one measurement into our
observations, ``analyse`` groups measurements by report and classifies them, ``cli`` is
``blockprobe ooni analyse``. ``summary`` holds the correspondence between our verdicts and
OONI's ``blocking``/``accessible`` pair, which the export (``reports.ooni``) also uses.
"""
