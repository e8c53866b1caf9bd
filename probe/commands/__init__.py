"""The volunteer's command groups: ``run``, ``daemon``/``status``/``config``,
``upload``/``verify``/``enroll``. ``blockprobe.cli`` adds them to the one console command.
"""
