from tests.receiver import receiver, receiver_server

__all__ = ["receiver", "receiver_server"]
