"""A script against the client openapi-python-client generated from the served description,
used as generated (no hand edits): log in, make an API token, upload, poll, download, delete.

Run by tests/tests/generated_clients.rs: client_flow.py BASE_URL EMAIL PASSWORD VIDEO, with the
generated package `mp3edge_client` on PYTHONPATH. Prints `ok` at the end; any failure raises.
"""

import sys
import time

from mp3edge_client import AuthenticatedClient, Client
from mp3edge_client.api.account import get_me
from mp3edge_client.api.downloads import download_audio
from mp3edge_client.api.jobs import delete_job, get_job
from mp3edge_client.api.session import login
from mp3edge_client.api.tokens import create_token
from mp3edge_client.api.uploads import upload
from mp3edge_client.models import Accepted, ErrorBody, JobStatus, JobView, NewApiToken, NewApiTokenRequest
from mp3edge_client.types import File

base, email, password, video = sys.argv[1:5]

# POST /login is HTTP Basic: any httpx auth the plain client carries.
session = login.sync_detailed(client=Client(base_url=base, raise_on_unexpected_status=True, httpx_args={"auth": (email, password)}))
assert session.status_code == 200, session
jwt = session.parsed
assert isinstance(jwt, str) and jwt.count(".") == 2, jwt

# A personal API token for the rest, as a script would keep one.
signed_in = AuthenticatedClient(base_url=base, token=jwt, raise_on_unexpected_status=True)
new = create_token.sync(client=signed_in, body=NewApiTokenRequest(name="generated client", expires_in_days=1))
assert isinstance(new, NewApiToken) and new.token.startswith("mp3e_"), new
api = AuthenticatedClient(base_url=base, token=new.token, raise_on_unexpected_status=True)
me = get_me.sync(client=api)
assert me.email == email, me

with open(video, "rb") as f:
    accepted = upload.sync(client=api, body=File(payload=f, file_name="talk.mp4", mime_type="video/mp4"), format_="mp3", filename="talk.mp4")
assert isinstance(accepted, Accepted), accepted

deadline = time.monotonic() + 120
while True:
    job = get_job.sync(id=accepted.job_id, client=api)
    assert isinstance(job, JobView), job
    if job.status in (JobStatus.DONE, JobStatus.FAILED):
        break
    assert time.monotonic() < deadline, f"job still {job.status}"
    time.sleep(0.5)
assert job.status == JobStatus.DONE, job.error

audio = download_audio.sync(id=accepted.job_id, client=api)
assert isinstance(audio, File), audio
data = audio.payload.read()
assert len(data) == job.output.size, (len(data), job.output.size)
assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0), data[:4]

deleted = delete_job.sync_detailed(id=accepted.job_id, client=api)
assert deleted.status_code == 204, deleted
gone = get_job.sync_detailed(id=accepted.job_id, client=api)
assert gone.status_code == 404 and isinstance(gone.parsed, ErrorBody) and gone.parsed.error == "not found", gone
print("ok")
