"""The run service: training runs for people, on a server, outliving the page that started them.

Uses the core (`gpt.*`) and knows nothing of Gradio.

- `request`  what a person asks for (a preset and overrides), checked against the limits
- `folder`   what the app keeps in a run folder: owner, writer lock, corpus
- `manager`  the scheduler: the queue and the worker threads (`JobManager`)
- `book`     what runs there are and how they are doing (`JobManager.runs`)
- `status`   `RunStatus`, the typed record every answer is
- `queue_eta` when a queued run should start, from the runs ahead of it
- `labels`   display names (`JobManager.labels`): what the teacher's page calls a student
- `board`    the class challenge: best validation bits per character within a training time
- `signing`  who is asking: owner tokens signed under a key that never leaves the runs folder
- `class_limits` the teacher's live limits, kept across restarts
"""

from .book import RunBook
from .manager import Job, JobManager
from .request import RunRequest, check_request
from .status import RunStatus

__all__ = ["Job", "JobManager", "RunBook", "RunRequest", "RunStatus", "check_request"]
