"""The run service: training runs for people, on a server, outliving the page that started them.

Uses the core (`gpt.*`) and knows nothing of Gradio.

- `request`  what a person asks for (a preset and overrides), checked against the limits
- `folder`   what the app keeps in a run folder: owner, writer lock, corpus
- `manager`  the queue and the worker threads, and what runs there are
"""

from .manager import Job, JobManager
from .request import RunRequest, check_request

__all__ = ["Job", "JobManager", "RunRequest", "check_request"]
