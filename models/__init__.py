"""Network code and the artifact format, shared by the trainer and the server.

Depends on torch and the standard library only; never imports ``app`` or ``training``.
"""
