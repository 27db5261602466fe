"""The `alliance` command: the core's commands plus the apps' (gateway, settlement).

It lives outside the core package so that `alliance` never imports the apps built on it."""
