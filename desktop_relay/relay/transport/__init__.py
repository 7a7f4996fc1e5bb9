"""socket.io on aiohttp: the socket -> session map, the hostile-client guard, the page's
routes, origins and the machine's LAN addresses."""
