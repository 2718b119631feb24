// main.tsx - the entry point of the UI bundle (web/build.mjs).
import { render } from 'preact';
import { App } from './app';
import './app.css';

render(<App />, document.getElementById('app')!);
