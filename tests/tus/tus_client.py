#!/usr/bin/env python3
"""Drives a tus upload with tuspy (the tus project's Python client, from PyPI), unchanged, for
the resumable-upload tests (tests/tests/resumable.rs).

  tus_client.py start ENDPOINT TOKEN FILE CHUNK STOP_AT [KEY=VALUE ...]
      creates the upload with the metadata given and sends it CHUNK bytes at a time until
      STOP_AT bytes are sent (a client killed half-way), then prints the upload's URL.
  tus_client.py resume URL TOKEN FILE CHUNK
      resumes the upload at URL from the offset the server reports (HEAD) and finishes it;
      prints the offset it resumed from.
  tus_client.py whole ENDPOINT TOKEN FILE CHUNK [KEY=VALUE ...]
      uploads the file in one go; prints the upload's URL.
"""

import sys

from tusclient import client


def main(argv):
    command = argv[1]
    if command in ("start", "whole"):
        endpoint, token, path, chunk = argv[2], argv[3], argv[4], int(argv[5])
        rest = argv[7:] if command == "start" else argv[6:]
        metadata = dict(pair.split("=", 1) for pair in rest)
        tus = client.TusClient(endpoint, headers={"Authorization": f"Bearer {token}"})
        uploader = tus.uploader(path, chunk_size=chunk, metadata=metadata)
        if command == "start":
            uploader.upload(stop_at=int(argv[6]))
        else:
            uploader.upload()
        print(uploader.url)
    elif command == "resume":
        url, token, path, chunk = argv[2], argv[3], argv[4], int(argv[5])
        tus = client.TusClient(url.rsplit("/", 1)[0], headers={"Authorization": f"Bearer {token}"})
        uploader = tus.uploader(path, url=url, chunk_size=chunk)
        print(uploader.offset, flush=True)
        uploader.upload()
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
