"""Fault suite: the emulator's every fault mode against create-call, monitoring and campaigns."""
