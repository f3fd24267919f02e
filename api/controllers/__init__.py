"""One Litestar controller per resource; each handler turns a request into workflow calls."""
