"""Tillit's chat server: the aiohttp application, Socket.IO namespaces, queue and stores."""
