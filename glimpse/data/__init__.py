"""Moving image data between clients and stores: the upload pipeline and streamed reads."""
