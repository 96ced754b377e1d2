"""The operating room: what operators do to a running service.

The admin routes, training jobs (data-set lookup, submission, the runner, the embedded
queue), model versions and their activation, and client feedback.
"""
