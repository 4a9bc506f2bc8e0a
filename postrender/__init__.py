"""Helm post-render of our releases: kustomize patches, then the air-gap image move and digest pin.

- `plan`: what a release's post-render does, its description and the wrapper Helm runs;
- `kustomize`: the release's `charts/patches/<release>/kustomization.yaml`, checked and applied by the pinned kubectl;
- `images`: every image moved to the site registry and pinned to the images lock's digest;
- `stream`: both steps over one manifest stream; `__main__`: the executable Helm runs.

At preview, render/releases.py renders every release with its post-render, so a patch that matches
nothing or an image the lock lacks fails the preview, before anything changes.
"""
