"""What an air-gapped site needs, carried in.

- `image_list`: every image a stack runs, read from what Helm renders (`make images`);
- `transfer`: images fetched by digest into one OCI layout, and pushed from it to the site registry (crane);
- `bundle`: the signed bundle of charts, images, stack files and tool pins, and its verified unpacking.

The command lines are `commands/images.py` and `commands/bundle.py`.
"""
