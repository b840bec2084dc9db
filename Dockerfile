FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY static ./static
COPY templates ./templates
RUN pip install --no-cache-dir -e .
RUN useradd --system battles
USER battles
EXPOSE 8000
CMD ["battles", "serve", "--host", "0.0.0.0", "--port", "8000"]
