"""What a recurrent network learned and how its gradients flow.

``gradients``     norms of dL_T/dh_t (and dL_T/dc_t) through time; a logger for training
``dynamics``      spectrum of the recurrent matrix, the notes' scalar systems, contractivity
``cliff``         the loss surface of the one-unit RNN and clipped vs unclipped descent on it
``interpret``     per-character labels from ``tokenize`` and the cells that predict them
``cell_page``     the self-contained HTML page that colours text by a cell's activation
``numpy_bptt``    the vanilla RNN with backpropagation through time written out in NumPy
``plots``         shared matplotlib set-up (Agg backend)
"""
