"""A Serve app for the drain tests (test_drain.py): each request takes a while, as real inference does, and
says which replica on which node answered. `?sleep=S` makes one request take S seconds."""

import asyncio

import ray
from ray import serve
from starlette.requests import Request


@serve.deployment
class Slow:
    async def __call__(self, request: Request):
        await asyncio.sleep(float(request.query_params.get("sleep", "0.2")))
        ctx = serve.get_replica_context()
        return {"replica": ctx.replica_tag, "node": ray.get_runtime_context().get_node_id()}


app = Slow.bind()
