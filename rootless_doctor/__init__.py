"""rootless-doctor: do rootless Docker and Podman keep client source IPs here, and the fix."""

__version__ = "0.1.0"
