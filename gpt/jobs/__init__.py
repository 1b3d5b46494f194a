"""The run service: training runs for people, on a server, outliving the page that started them.

Uses the core (`gpt.*`) and knows nothing of Gradio.

- `request`  what a person asks for (a preset and overrides), checked against the limits
- `folder`   what the app keeps in a run folder: owner, writer lock, corpus
- `manager`  the scheduler: the queue and the worker threads (`JobManager`)
- `book`     what runs there are and how they are doing (`JobManager.runs`)
- `status`   `RunStatus`, the typed record every answer is
"""

from .book import RunBook
from .manager import Job, JobManager
from .request import RunRequest, check_request
from .status import RunStatus

__all__ = ["Job", "JobManager", "RunBook", "RunRequest", "RunStatus", "check_request"]
